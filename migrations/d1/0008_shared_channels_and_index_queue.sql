CREATE TABLE `connect_index_queue` (
	`team_id` text NOT NULL,
	`partner_id` text NOT NULL,
	`seq` integer DEFAULT 1 NOT NULL,
	`queued_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `partner_id`)
);
--> statement-breakpoint
CREATE INDEX `connect_index_queue_at` ON `connect_index_queue` (`queued_at`);--> statement-breakpoint
CREATE TABLE `shared_channel_invites` (
	`id` text PRIMARY KEY NOT NULL,
	`connection_id` text NOT NULL,
	`host_team` text NOT NULL,
	`guest_team` text NOT NULL,
	`channel_id` text NOT NULL,
	`channel_name` text NOT NULL,
	`status` text NOT NULL,
	`live` integer,
	`created_user` text NOT NULL,
	`created_at` integer NOT NULL,
	`answered_user` text,
	`answered_at` integer,
	`auto_approved` integer DEFAULT 0 NOT NULL,
	`ended_team` text,
	`ended_user` text,
	`ended_at` integer,
	`applied` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `shared_channel_invites_live` ON `shared_channel_invites` (`host_team`,`channel_id`,`guest_team`,`live`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_host` ON `shared_channel_invites` (`host_team`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_guest` ON `shared_channel_invites` (`guest_team`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_connection` ON `shared_channel_invites` (`connection_id`,`live`);--> statement-breakpoint
CREATE INDEX `shared_channel_invites_unapplied` ON `shared_channel_invites` (`applied`,`updated_at`);--> statement-breakpoint
CREATE INDEX `connections_inviter_id` ON `connections` (`inviter`,`id`);--> statement-breakpoint
CREATE INDEX `connections_invitee_id` ON `connections` (`invitee`,`id`);