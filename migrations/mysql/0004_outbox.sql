CREATE TABLE IF NOT EXISTS `applied_mutations` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`id` varchar(64) COLLATE utf8mb4_bin NOT NULL,
	`applied_at` bigint NOT NULL,
	CONSTRAINT `applied_mutations_team_id_id_pk` PRIMARY KEY(`team_id`,`id`),
	INDEX `applied_mutations_at` (`applied_at`)
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS `outbox` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`id` varchar(64) COLLATE utf8mb4_bin NOT NULL,
	`queue` varchar(32) NOT NULL,
	`body` mediumtext NOT NULL,
	`created_at` bigint NOT NULL,
	`sent_at` bigint,
	CONSTRAINT `outbox_team_id_id_pk` PRIMARY KEY(`team_id`,`id`),
	INDEX `outbox_unsent` (`sent_at`,`created_at`)
);
