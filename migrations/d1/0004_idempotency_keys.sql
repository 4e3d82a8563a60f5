CREATE TABLE `idempotency_keys` (
	`team_id` text NOT NULL,
	`idem_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`result` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `idem_key`)
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_at` ON `idempotency_keys` (`created_at`);