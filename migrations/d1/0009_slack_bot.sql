CREATE TABLE `slack_events` (
	`event_id` text PRIMARY KEY NOT NULL,
	`team_id` text NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 1 NOT NULL,
	`claimed_at` integer NOT NULL,
	`finished_at` integer,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `slack_events_claimed_at` ON `slack_events` (`claimed_at`);--> statement-breakpoint
CREATE TABLE `slack_installations` (
	`team_id` text PRIMARY KEY NOT NULL,
	`bot_token` text NOT NULL,
	`bot_user_id` text NOT NULL,
	`app_id` text NOT NULL,
	`installed_at` integer NOT NULL
);
