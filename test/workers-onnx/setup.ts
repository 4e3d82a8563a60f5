import { registerOnnxRuntimeWeb } from "../../platform/models/onnxruntime-web";

// The ONNX build's registration, for what the tests import themselves (their
// own apps and loaders); requests to SELF go through workers/index-onnx.ts,
// which registers it too.
registerOnnxRuntimeWeb();
