-- wrk script: PUT the body in $XCAP_BODY_FILE with $XCAP_CONTENT_TYPE.
local f = assert(io.open(os.getenv("XCAP_BODY_FILE"), "rb"))
wrk.method = "PUT"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("XCAP_CONTENT_TYPE")
