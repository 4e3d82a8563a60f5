CREATE TABLE `channel_shares` (
	`team_id` varchar(40) NOT NULL,
	`channel_id` varchar(40) NOT NULL,
	`host_team_id` varchar(40) NOT NULL,
	CONSTRAINT `channel_shares_team_id_channel_id_pk` PRIMARY KEY(`team_id`,`channel_id`)
);
--> statement-breakpoint
CREATE TABLE `channels` (
	`team_id` varchar(40) NOT NULL,
	`id` varchar(40) NOT NULL,
	`name` varchar(80) NOT NULL,
	`topic` varchar(250) NOT NULL DEFAULT '',
	`purpose` varchar(250) NOT NULL DEFAULT '',
	`is_private` tinyint NOT NULL DEFAULT 0,
	`is_archived` tinyint NOT NULL DEFAULT 0,
	`created_at` bigint NOT NULL,
	`updated_at` bigint NOT NULL,
	CONSTRAINT `channels_team_id_id_pk` PRIMARY KEY(`team_id`,`id`),
	CONSTRAINT `channels_team_name` UNIQUE(`team_id`,`name`)
);
--> statement-breakpoint
CREATE TABLE `directory_changes` (
	`team_id` varchar(40) NOT NULL,
	`version` bigint NOT NULL,
	`kind` varchar(16) NOT NULL,
	`entity_id` varchar(40) NOT NULL,
	`extra` varchar(100) NOT NULL DEFAULT '',
	`at` bigint NOT NULL,
	CONSTRAINT `directory_changes_team_id_version_pk` PRIMARY KEY(`team_id`,`version`)
);
--> statement-breakpoint
CREATE TABLE `memberships` (
	`team_id` varchar(40) NOT NULL,
	`channel_id` varchar(40) NOT NULL,
	`user_id` varchar(40) NOT NULL,
	`user_team_id` varchar(40) NOT NULL,
	`joined_at` bigint NOT NULL,
	CONSTRAINT `memberships_team_id_channel_id_user_id_pk` PRIMARY KEY(`team_id`,`channel_id`,`user_id`)
);
--> statement-breakpoint
ALTER TABLE `teams` ADD `dir_version` bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `name` varchar(80) DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `real_name` varchar(200) DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `display_name` varchar(80) DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `title` varchar(200) DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `avatar_hash` varchar(64) DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `tz` varchar(64) DEFAULT 'UTC' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `is_bot` tinyint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `channel_shares_host` ON `channel_shares` (`host_team_id`,`channel_id`);--> statement-breakpoint
CREATE INDEX `memberships_team_user` ON `memberships` (`team_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `memberships_user_team_user` ON `memberships` (`user_team_id`,`user_id`);