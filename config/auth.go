package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Auth holds the credentials that are not the admin token (Admin.Token,
// which admin-token-file may also set).
type Auth struct {
	// IngestionToken is the bearer token of the ingestion endpoints
	// (ingestion-token or ingestion-token-file), independent of admin-token;
	// "" = ingestion takes the admin token (if any), as before.
	IngestionToken string
}

var authKeys = []key{
	{"ingestion-token", kString, "", "Bearer token required on the ingestion endpoints (/v2/raw, /v3/raw, ...) instead of admin-token, so forwarders (http-transport.bearer-token) need not hold the admin token; compared in constant time. Empty = ingestion takes admin-token. Prefer ingestion-token-file or GARNER_INGESTION_TOKEN to a flag, which ps shows", true, nil},
	{"admin-token-file", kString, "", "File holding admin-token (trailing newline ignored), read at start and on SIGHUP (the new token applies to the next request, the old one no longer opens anything); exclusive with admin-token", true, nil},
	{"ingestion-token-file", kString, "", "File holding ingestion-token (trailing newline ignored), read at start and on SIGHUP; exclusive with ingestion-token", true, nil},
	{"http-transport.bearer-token", kString, "", "Forwarder mode: sent as \"Authorization: Bearer <token>\" with every request: the aggregators' ingestion-token (or admin-token). Empty = none", false, nil},
	{"http-transport.bearer-token-file", kString, "", "Forwarder mode: file holding bearer-token (trailing newline ignored), read at start and on SIGHUP (sent from the next request on); exclusive with bearer-token", false, nil},
}

func (c *Config) loadAuth(r *reader) {
	if t, ok := r.tokenFile("admin-token", "admin-token-file", c.Admin.Token); ok {
		c.Admin.Token = t
	}
	c.Auth.IngestionToken, _ = r.tokenFile("ingestion-token", "ingestion-token-file", strings.TrimSpace(r.str("ingestion-token")))
	if c.Auth.IngestionToken != "" && c.Auth.IngestionToken == c.Admin.Token {
		r.fail("ingestion-token", errors.New("is the same as admin-token: give forwarders a token of their own"))
	}
	tok, _ := r.tokenFile("http-transport.bearer-token", "http-transport.bearer-token-file", strings.TrimSpace(r.str("http-transport.bearer-token")))
	if tok == "" {
		return
	}
	h := c.Forward.HTTPTransport.CustomHeaders
	for k := range h {
		if strings.EqualFold(k, "Authorization") {
			r.fail("http-transport.bearer-token", errors.New("http-transport.custom-headers sets Authorization too: keep one"))
			return
		}
	}
	m := make(map[string]string, len(h)+1)
	for k, v := range h {
		m[k] = v
	}
	m["Authorization"] = "Bearer " + tok
	c.Forward.HTTPTransport.CustomHeaders = m
}

// tokenFile reads the token in file key fileKey, when set (refusing it next
// to tokenKey's value cur); ok reports whether the file was read.
func (r *reader) tokenFile(tokenKey, fileKey, cur string) (tok string, ok bool) {
	path := strings.TrimSpace(r.str(fileKey))
	if path == "" {
		return cur, false
	}
	if cur != "" {
		r.fail(fileKey, fmt.Errorf("set together with %s: keep one", tokenKey))
		return cur, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		r.fail(fileKey, err)
		return "", false
	}
	tok = strings.TrimRight(string(b), "\r\n")
	switch {
	case tok == "":
		r.fail(fileKey, fmt.Errorf("%q is empty", path))
	case tok != strings.TrimSpace(tok) || strings.ContainsAny(tok, "\r\n"):
		r.fail(fileKey, fmt.Errorf("%q: a token is one line without surrounding white space", path))
	}
	return tok, true
}
