"""Edges: all I/O (lainlet, daemons, DynamoDB, webhooks), each behind one module."""
