import { registerOnnxRuntimeWeb } from "../platform/models/onnxruntime-web";

// The ONNX build (wrangler.onnx.toml): the same Worker as workers/index.ts,
// plus onnxruntime-web registered as the ONNX runtime
// (platform/models/runtime-registry.ts) for graphs the TypeScript readers do
// not cover: a recommender model uploaded in another shape, a forced engine
// "onnxruntime-web", a retrained Slack bot graph of another shape. The wasm
// makes this bundle ~4 MiB gzip (the paid plan); the default build leaves it
// out (docs/deploy.md, Builds). Registered at import, before any request.

registerOnnxRuntimeWeb();

export * from "./index";
export { default } from "./index";
