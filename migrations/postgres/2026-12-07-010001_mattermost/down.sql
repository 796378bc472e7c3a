DROP TABLE mattermost_links;
DROP TABLE mattermost_state;
