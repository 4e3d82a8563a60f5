CREATE TABLE `rec_current` (
	`team_id` text PRIMARY KEY NOT NULL,
	`snapshot_id` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `rec_feature_rows` (
	`team_id` text NOT NULL,
	`snapshot_id` text NOT NULL,
	`kind` text NOT NULL,
	`key` text NOT NULL,
	`data` text NOT NULL,
	PRIMARY KEY(`team_id`, `snapshot_id`, `kind`, `key`)
);
--> statement-breakpoint
CREATE TABLE `rec_snapshots` (
	`team_id` text NOT NULL,
	`snapshot_id` text NOT NULL,
	`as_of` integer NOT NULL,
	`dataset` text NOT NULL,
	`rows` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `snapshot_id`)
);
