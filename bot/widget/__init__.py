"""The in-app chat widget: static assets served by the socket.io channel."""
