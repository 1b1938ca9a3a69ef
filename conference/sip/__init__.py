"""
The sans-I/O SIP core: messages, parsing, transactions, dialogs and digest.

Nothing in this package imports the reactor: it takes bytes or values plus
the current time and returns messages, actions and timers.
"""
