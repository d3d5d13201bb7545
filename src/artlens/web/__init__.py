"""The web page (``static/index.html``, ``app.js``, ``style.css``), served by :mod:`artlens.api`."""
