CREATE TABLE IF NOT EXISTS `staged_users` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`import_key` varchar(255) COLLATE utf8mb4_bin NOT NULL,
	`request_hash` varchar(64) NOT NULL,
	`id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`email` varchar(254) COLLATE utf8mb4_bin NOT NULL,
	`domain` varchar(253) COLLATE utf8mb4_bin NOT NULL,
	`role` varchar(8) NOT NULL,
	`name` varchar(80) NOT NULL,
	`staged_at` bigint NOT NULL,
	CONSTRAINT `staged_users_team_id_import_key_id_pk` PRIMARY KEY(`team_id`,`import_key`,`id`),
	INDEX `staged_users_at` (`staged_at`)
);
