CREATE TABLE `connect_index_queue` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`partner_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`seq` bigint NOT NULL DEFAULT 1,
	`queued_at` bigint NOT NULL,
	CONSTRAINT `connect_index_queue_team_id_partner_id_pk` PRIMARY KEY(`team_id`,`partner_id`)
);
--> statement-breakpoint
CREATE TABLE `shared_channel_invites` (
	`id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`connection_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`host_team` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`guest_team` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`channel_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`channel_name` varchar(80) COLLATE utf8mb4_bin NOT NULL,
	`status` varchar(16) NOT NULL,
	`live` tinyint,
	`created_user` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`created_at` bigint NOT NULL,
	`answered_user` varchar(40) COLLATE utf8mb4_bin,
	`answered_at` bigint,
	`auto_approved` tinyint NOT NULL DEFAULT 0,
	`ended_team` varchar(40) COLLATE utf8mb4_bin,
	`ended_user` varchar(40) COLLATE utf8mb4_bin,
	`ended_at` bigint,
	`applied` tinyint NOT NULL,
	`updated_at` bigint NOT NULL,
	CONSTRAINT `shared_channel_invites_id` PRIMARY KEY(`id`),
	CONSTRAINT `shared_channel_invites_live` UNIQUE(`host_team`,`channel_id`,`guest_team`,`live`)
);
--> statement-breakpoint
CREATE INDEX `connect_index_queue_at` ON `connect_index_queue` (`queued_at`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_host` ON `shared_channel_invites` (`host_team`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_guest` ON `shared_channel_invites` (`guest_team`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_connection` ON `shared_channel_invites` (`connection_id`,`live`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_unapplied` ON `shared_channel_invites` (`applied`,`updated_at`);--> statement-breakpoint
CREATE INDEX `connections_inviter_id` ON `connections` (`inviter`,`id`);--> statement-breakpoint
CREATE INDEX `connections_invitee_id` ON `connections` (`invitee`,`id`);