package main

import (
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/forwarder"
	"github.com/garner-metrics/garner/pkg/web"
)

// tokenKeys are the keys whose new values watchTokens applies on SIGHUP.
var tokenKeys = []string{
	"admin-token", "admin-token-file", "ingestion-token", "ingestion-token-file",
	"http-transport.bearer-token", "http-transport.bearer-token-file",
}

// watchTokens puts new tokens in force on SIGHUP: every configuration load
// re-reads the token files (admin-token-file, ingestion-token-file,
// http-transport.bearer-token-file), whose contents change while the keys
// do not, and a changed admin-token or ingestion-token value is applied
// the same way. The HTTP servers check the new tokens from the next request
// on (the old ones no longer open anything) and the forwarder (fwd, nil when
// not in forwarder mode) sends its new one. Turning a token on or off needs
// a restart: the reloader logs that as a hook error.
func watchTokens(rl *reloader, srv *web.Server, fwd *forwarder.Forwarder, cfg *config.Config, log logrus.FieldLogger) {
	// The reloader runs every hook in its one goroutine: no lock.
	admin, ingest := cfg.Admin.Token, cfg.Auth.IngestionToken
	auth := cfg.Forward.HTTPTransport.CustomHeaders["Authorization"]
	apply := func(next *config.Config) error {
		var changed []string
		if next.Admin.Token != admin || next.Auth.IngestionToken != ingest {
			if err := srv.SetTokens(next.Admin.Token, next.Auth.IngestionToken); err != nil {
				return err
			}
			if next.Admin.Token != admin {
				changed = append(changed, "admin-token")
			}
			if next.Auth.IngestionToken != ingest {
				changed = append(changed, "ingestion-token")
			}
			admin, ingest = next.Admin.Token, next.Auth.IngestionToken
		}
		if a := next.Forward.HTTPTransport.CustomHeaders["Authorization"]; fwd != nil && a != auth {
			fwd.SetAuthorization(a)
			auth = a
			changed = append(changed, "http-transport.bearer-token")
		}
		if len(changed) > 0 {
			log.WithField("tokens", changed).Info("SIGHUP: new tokens in force; the previous ones no longer open anything")
		}
		return nil
	}
	// A token file's new contents. The error (a token turned on or off)
	// only comes with a changed key, which the hook below reports.
	rl.onEvery(func(next *config.Config) { _ = apply(next) })
	rl.on(apply, tokenKeys...)
}
