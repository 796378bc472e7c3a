DROP TABLE agent_invitations;
