"""Accounts: who is calling (API tokens tied to a user) and what their role allows."""
