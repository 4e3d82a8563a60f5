CREATE TABLE `rec_current` (
	`team_id` varchar(40) NOT NULL,
	`snapshot_id` varchar(40) NOT NULL,
	`updated_at` bigint NOT NULL,
	CONSTRAINT `rec_current_team_id` PRIMARY KEY(`team_id`)
);
--> statement-breakpoint
CREATE TABLE `rec_feature_rows` (
	`team_id` varchar(40) NOT NULL,
	`snapshot_id` varchar(40) NOT NULL,
	`kind` varchar(8) NOT NULL,
	`key` varchar(96) NOT NULL,
	`data` text NOT NULL,
	CONSTRAINT `rec_feature_rows_team_id_snapshot_id_kind_key_pk` PRIMARY KEY(`team_id`,`snapshot_id`,`kind`,`key`)
);
--> statement-breakpoint
CREATE TABLE `rec_snapshots` (
	`team_id` varchar(40) NOT NULL,
	`snapshot_id` varchar(40) NOT NULL,
	`as_of` int NOT NULL,
	`dataset` varchar(100) NOT NULL,
	`rows` int NOT NULL DEFAULT 0,
	`created_at` bigint NOT NULL,
	CONSTRAINT `rec_snapshots_team_id_snapshot_id_pk` PRIMARY KEY(`team_id`,`snapshot_id`)
);
