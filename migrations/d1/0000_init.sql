CREATE TABLE `domains` (
	`team_id` text NOT NULL,
	`domain` text NOT NULL,
	`role` text NOT NULL,
	`count` integer DEFAULT 0 NOT NULL,
	`date_update` integer NOT NULL,
	PRIMARY KEY(`team_id`, `domain`, `role`)
);
--> statement-breakpoint
CREATE TABLE `teams` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`plan` text NOT NULL,
	`claimed_domains` text NOT NULL,
	`created_at` integer NOT NULL,
	`healed_at` integer,
	`heal_needed_at` integer,
	`heal_lease_owner` text,
	`heal_lease_until` integer
);
--> statement-breakpoint
CREATE TABLE `users` (
	`team_id` text NOT NULL,
	`id` text NOT NULL,
	`email` text NOT NULL,
	`domain` text NOT NULL,
	`role` text NOT NULL,
	`deactivated` integer DEFAULT 0 NOT NULL,
	`version` integer DEFAULT 1 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_team_email` ON `users` (`team_id`,`email`);