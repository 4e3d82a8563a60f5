CREATE TABLE IF NOT EXISTS `idempotency_keys` (
	`team_id` varchar(40) COLLATE utf8mb4_bin NOT NULL,
	`idem_key` varchar(255) COLLATE utf8mb4_bin NOT NULL,
	`request_hash` varchar(64) NOT NULL,
	`result` mediumtext NOT NULL,
	`created_at` bigint NOT NULL,
	CONSTRAINT `idempotency_keys_team_id_idem_key_pk` PRIMARY KEY(`team_id`,`idem_key`),
	INDEX `idempotency_keys_at` (`created_at`)
);
