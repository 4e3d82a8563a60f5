-- Ids and keys compare byte for byte (utf8mb4_bin), as on D1; see docs/storage.md.
-- drizzle-kit emits one ALTER per column; they are merged here into one ALTER per
-- table so each table is rebuilt once. The column definitions are drizzle-kit's,
-- so meta/0003_snapshot.json matches. Going from a case-insensitive collation to
-- a binary one only splits keys apart, so no existing row can violate a key.
ALTER TABLE `channel_shares`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `channel_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `host_team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL;
--> statement-breakpoint
ALTER TABLE `channels`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `name` varchar(80) COLLATE utf8mb4_bin NOT NULL;
--> statement-breakpoint
ALTER TABLE `directory_changes`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `entity_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `extra` varchar(100) COLLATE utf8mb4_bin NOT NULL DEFAULT '';
--> statement-breakpoint
ALTER TABLE `domains`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `domain` varchar(253) COLLATE utf8mb4_bin NOT NULL;
--> statement-breakpoint
ALTER TABLE `memberships`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `channel_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `user_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `user_team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL;
--> statement-breakpoint
ALTER TABLE `rec_current`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `snapshot_id` varchar(40) COLLATE utf8mb4_bin NOT NULL;
--> statement-breakpoint
ALTER TABLE `rec_feature_rows`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `snapshot_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `key` varchar(96) COLLATE utf8mb4_bin NOT NULL;
--> statement-breakpoint
ALTER TABLE `rec_snapshots`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `snapshot_id` varchar(40) COLLATE utf8mb4_bin NOT NULL;
--> statement-breakpoint
ALTER TABLE `teams`
	MODIFY COLUMN `id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `heal_lease_owner` varchar(64) COLLATE utf8mb4_bin;
--> statement-breakpoint
ALTER TABLE `users`
	MODIFY COLUMN `team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `email` varchar(254) COLLATE utf8mb4_bin NOT NULL,
	MODIFY COLUMN `domain` varchar(253) COLLATE utf8mb4_bin NOT NULL;
