CREATE TABLE `channel_shares` (
	`team_id` text NOT NULL,
	`channel_id` text NOT NULL,
	`host_team_id` text NOT NULL,
	PRIMARY KEY(`team_id`, `channel_id`)
);
--> statement-breakpoint
CREATE INDEX `channel_shares_host` ON `channel_shares` (`host_team_id`,`channel_id`);--> statement-breakpoint
CREATE TABLE `channels` (
	`team_id` text NOT NULL,
	`id` text NOT NULL,
	`name` text NOT NULL,
	`topic` text DEFAULT '' NOT NULL,
	`purpose` text DEFAULT '' NOT NULL,
	`is_private` integer DEFAULT 0 NOT NULL,
	`is_archived` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `channels_team_name` ON `channels` (`team_id`,`name`);--> statement-breakpoint
CREATE TABLE `directory_changes` (
	`team_id` text NOT NULL,
	`version` integer NOT NULL,
	`kind` text NOT NULL,
	`entity_id` text NOT NULL,
	`extra` text DEFAULT '' NOT NULL,
	`at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `version`)
);
--> statement-breakpoint
CREATE TABLE `memberships` (
	`team_id` text NOT NULL,
	`channel_id` text NOT NULL,
	`user_id` text NOT NULL,
	`user_team_id` text NOT NULL,
	`joined_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `channel_id`, `user_id`)
);
--> statement-breakpoint
CREATE INDEX `memberships_team_user` ON `memberships` (`team_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `memberships_user_team_user` ON `memberships` (`user_team_id`,`user_id`);--> statement-breakpoint
ALTER TABLE `teams` ADD `dir_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `name` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `real_name` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `display_name` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `title` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `avatar_hash` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `tz` text DEFAULT 'UTC' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `is_bot` integer DEFAULT 0 NOT NULL;