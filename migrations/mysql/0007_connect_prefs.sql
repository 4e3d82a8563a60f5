CREATE TABLE `connect_prefs` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`target_team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`prefs` mediumblob NOT NULL,
	`date_create` bigint NOT NULL,
	`date_update` bigint NOT NULL,
	CONSTRAINT `connect_prefs_team_id_target_team_id_pk` PRIMARY KEY(`team_id`,`target_team_id`)
);
--> statement-breakpoint
CREATE TABLE `connect_prefs_audit` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`target_team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`pref_key` varchar(64) NOT NULL,
	`actor` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`at` bigint NOT NULL,
	`before` mediumtext,
	`after` mediumtext,
	CONSTRAINT `connect_prefs_audit_team_id_id_pk` PRIMARY KEY(`team_id`,`id`)
);
--> statement-breakpoint
CREATE INDEX `connect_prefs_target` ON `connect_prefs` (`target_team_id`);--> statement-breakpoint
CREATE INDEX `connect_prefs_audit_at` ON `connect_prefs_audit` (`team_id`,`at`);