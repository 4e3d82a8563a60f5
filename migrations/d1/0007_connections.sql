CREATE TABLE `connect_invitations` (
	`from_team` text NOT NULL,
	`id` text NOT NULL,
	`from_user` text NOT NULL,
	`code_hash` text NOT NULL,
	`status` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`answered_team` text,
	`answered_user` text,
	`answered_at` integer,
	`connection_id` text,
	PRIMARY KEY(`from_team`, `id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `connect_invitations_code` ON `connect_invitations` (`code_hash`);--> statement-breakpoint
CREATE INDEX `connect_invitations_team_at` ON `connect_invitations` (`from_team`,`created_at`);--> statement-breakpoint
CREATE TABLE `connections` (
	`id` text PRIMARY KEY NOT NULL,
	`inviter` text NOT NULL,
	`invitee` text NOT NULL,
	`team_low` text NOT NULL,
	`team_high` text NOT NULL,
	`live` integer,
	`status` text NOT NULL,
	`invitation_id` text NOT NULL,
	`requested_user` text NOT NULL,
	`requested_at` integer NOT NULL,
	`accepted_user` text NOT NULL,
	`accepted_at` integer NOT NULL,
	`disconnected_team` text,
	`disconnected_user` text,
	`disconnected_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `connections_live_pair` ON `connections` (`team_low`,`team_high`,`live`);--> statement-breakpoint
CREATE INDEX `connections_inviter` ON `connections` (`inviter`,`accepted_at`,`id`);--> statement-breakpoint
CREATE INDEX `connections_invitee` ON `connections` (`invitee`,`accepted_at`,`id`);