-- The exact body each delivery sends, fixed when the event is fanned out: every retry sends the
-- same bytes (receivers can deduplicate on X-Dothi-Delivery and verify the same signature input).
ALTER TABLE notification_deliveries ADD COLUMN body text NOT NULL DEFAULT '';
ALTER TABLE notification_deliveries ALTER COLUMN body DROP DEFAULT;
