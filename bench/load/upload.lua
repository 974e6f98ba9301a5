-- wrk script: every request is a POST of a 64 KiB body (keep-alive, like the GETs).
-- The target path comes from the URL given to wrk.
wrk.method = "POST"
wrk.body = string.rep("x", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
