CREATE TABLE `domains` (
	`team_id` varchar(40) NOT NULL,
	`domain` varchar(253) NOT NULL,
	`role` varchar(8) NOT NULL,
	`count` int NOT NULL DEFAULT 0,
	`date_update` bigint NOT NULL,
	CONSTRAINT `domains_team_id_domain_role_pk` PRIMARY KEY(`team_id`,`domain`,`role`)
);
--> statement-breakpoint
CREATE TABLE `teams` (
	`id` varchar(40) NOT NULL,
	`name` varchar(200) NOT NULL,
	`plan` varchar(16) NOT NULL,
	`claimed_domains` text NOT NULL,
	`created_at` bigint NOT NULL,
	`healed_at` bigint,
	`heal_needed_at` bigint,
	`heal_lease_owner` varchar(64),
	`heal_lease_until` bigint,
	CONSTRAINT `teams_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `users` (
	`team_id` varchar(40) NOT NULL,
	`id` varchar(40) NOT NULL,
	`email` varchar(254) NOT NULL,
	`domain` varchar(253) NOT NULL,
	`role` varchar(8) NOT NULL,
	`deactivated` tinyint NOT NULL DEFAULT 0,
	`version` int NOT NULL DEFAULT 1,
	`created_at` bigint NOT NULL,
	`updated_at` bigint NOT NULL,
	CONSTRAINT `users_team_id_id_pk` PRIMARY KEY(`team_id`,`id`),
	CONSTRAINT `users_team_email` UNIQUE(`team_id`,`email`)
);
