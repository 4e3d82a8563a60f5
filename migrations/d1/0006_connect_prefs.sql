CREATE TABLE `connect_prefs` (
	`team_id` text NOT NULL,
	`target_team_id` text NOT NULL,
	`prefs` blob NOT NULL,
	`date_create` integer NOT NULL,
	`date_update` integer NOT NULL,
	PRIMARY KEY(`team_id`, `target_team_id`)
);
--> statement-breakpoint
CREATE INDEX `connect_prefs_target` ON `connect_prefs` (`target_team_id`);--> statement-breakpoint
CREATE TABLE `connect_prefs_audit` (
	`team_id` text NOT NULL,
	`id` text NOT NULL,
	`target_team_id` text NOT NULL,
	`pref_key` text NOT NULL,
	`actor` text NOT NULL,
	`at` integer NOT NULL,
	`before` text,
	`after` text,
	PRIMARY KEY(`team_id`, `id`)
);
--> statement-breakpoint
CREATE INDEX `connect_prefs_audit_at` ON `connect_prefs_audit` (`team_id`,`at`);