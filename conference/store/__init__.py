"""
Storage backends behind the interfaces of L{conference.interfaces}:
memory, SQLite and PostgreSQL.
"""
