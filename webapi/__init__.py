"""webapi: the HTTP/JSON face of wakame-vnet (reads from the database, writes via vnmgr)."""
