"""
The Janus AudioBridge protocol, sans-I/O: the messages the Janus media
backend (L{conference.app.janus}) sends over Janus's HTTP API and the
reading of its replies.
"""
