"""
The application layer: core answers (OPTIONS, 405, 501, ...), registrar,
conference focus and media.
"""
