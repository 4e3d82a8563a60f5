CREATE TABLE `connect_invitations` (
	`from_team` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`from_user` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`code_hash` varchar(64) COLLATE utf8mb4_bin NOT NULL,
	`status` varchar(16) NOT NULL,
	`created_at` bigint NOT NULL,
	`expires_at` bigint NOT NULL,
	`answered_team` varchar(40) COLLATE utf8mb4_bin,
	`answered_user` varchar(40) COLLATE utf8mb4_bin,
	`answered_at` bigint,
	`connection_id` varchar(40) COLLATE utf8mb4_bin,
	CONSTRAINT `connect_invitations_from_team_id_pk` PRIMARY KEY(`from_team`,`id`),
	CONSTRAINT `connect_invitations_code` UNIQUE(`code_hash`)
);
--> statement-breakpoint
CREATE TABLE `connections` (
	`id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`inviter` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`invitee` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`team_low` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`team_high` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`live` tinyint,
	`status` varchar(16) NOT NULL,
	`invitation_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`requested_user` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`requested_at` bigint NOT NULL,
	`accepted_user` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`accepted_at` bigint NOT NULL,
	`disconnected_team` varchar(40) COLLATE utf8mb4_bin,
	`disconnected_user` varchar(40) COLLATE utf8mb4_bin,
	`disconnected_at` bigint,
	CONSTRAINT `connections_id` PRIMARY KEY(`id`),
	CONSTRAINT `connections_live_pair` UNIQUE(`team_low`,`team_high`,`live`)
);
--> statement-breakpoint
CREATE INDEX `connect_invitations_team_at` ON `connect_invitations` (`from_team`,`created_at`);--> statement-breakpoint
CREATE INDEX `connections_inviter` ON `connections` (`inviter`,`accepted_at`,`id`);--> statement-breakpoint
CREATE INDEX `connections_invitee` ON `connections` (`invitee`,`accepted_at`,`id`);