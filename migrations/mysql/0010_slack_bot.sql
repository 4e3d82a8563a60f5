CREATE TABLE `slack_events` (
	`event_id` varchar(64) COLLATE utf8mb4_bin NOT NULL,
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`state` varchar(8) NOT NULL,
	`attempts` int NOT NULL DEFAULT 1,
	`claimed_at` bigint NOT NULL,
	`finished_at` bigint,
	`detail` varchar(400),
	CONSTRAINT `slack_events_event_id` PRIMARY KEY(`event_id`)
);
--> statement-breakpoint
CREATE TABLE `slack_installations` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`bot_token` text NOT NULL,
	`bot_user_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`app_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`installed_at` bigint NOT NULL,
	CONSTRAINT `slack_installations_team_id` PRIMARY KEY(`team_id`)
);
--> statement-breakpoint
CREATE INDEX `slack_events_claimed_at` ON `slack_events` (`claimed_at`);