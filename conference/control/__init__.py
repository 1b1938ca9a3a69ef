"""
The sans-I/O core of conference control (RFC 4575, RFC 4579):
conference-info documents, roles and the policy read from a conference's
calendar, and the moderator's requests, as plain values.
"""
