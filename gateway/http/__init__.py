"""The gateway's own HTTP/1.1 server: an asyncio Protocol on httptools that serves ASGI apps."""
