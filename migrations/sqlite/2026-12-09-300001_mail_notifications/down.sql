DROP TABLE customer_welcomes;
DROP TABLE notification_settings;
