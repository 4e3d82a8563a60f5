CREATE TABLE `staged_users` (
	`team_id` text NOT NULL,
	`import_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`id` text NOT NULL,
	`email` text NOT NULL,
	`domain` text NOT NULL,
	`role` text NOT NULL,
	`name` text NOT NULL,
	`staged_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `import_key`, `id`)
);
--> statement-breakpoint
CREATE INDEX `staged_users_at` ON `staged_users` (`staged_at`);