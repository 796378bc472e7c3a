-- The chat queue and the ticket list (issue #17 items 6, 7): since when the customer has been waiting for an
-- answer — the time of the first customer message that no agent reply (an outgoing message; notes do not answer)
-- followed; NULL when the last word was the business's. Kept by every transaction that appends a message.
ALTER TABLE conversations ADD COLUMN waiting_since TIMESTAMP NULL;
UPDATE conversations SET waiting_since = (
    SELECT MIN(m.created_at) FROM messages m
    WHERE m.conversation_id = conversations.id
      AND m.direction = 'in'
      AND m.seq > COALESCE(
          (SELECT MAX(o.seq) FROM messages o WHERE o.conversation_id = conversations.id AND o.direction = 'out'), 0)
);
CREATE INDEX conversations_waiting_since ON conversations(waiting_since);
