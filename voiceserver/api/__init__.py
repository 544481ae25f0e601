"""The server's loopback HTTP API: status, admin actions, who may use them (token, Host/Origin) and the audit log."""
