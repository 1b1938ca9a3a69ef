"""
The sans-I/O BIND logic (draft-schulzrinne-sip-bind-00): headers, binding
sets and their atomic updates.
"""
