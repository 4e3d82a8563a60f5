CREATE TABLE `applied_mutations` (
	`team_id` text NOT NULL,
	`id` text NOT NULL,
	`applied_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `id`)
);
--> statement-breakpoint
CREATE INDEX `applied_mutations_at` ON `applied_mutations` (`applied_at`);--> statement-breakpoint
CREATE TABLE `outbox` (
	`team_id` text NOT NULL,
	`id` text NOT NULL,
	`queue` text NOT NULL,
	`body` text NOT NULL,
	`created_at` integer NOT NULL,
	`sent_at` integer,
	PRIMARY KEY(`team_id`, `id`)
);
--> statement-breakpoint
CREATE INDEX `outbox_unsent` ON `outbox` (`sent_at`,`created_at`);