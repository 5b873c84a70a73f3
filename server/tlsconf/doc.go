// Package tlsconf builds the TLS configurations of weir serve and of its
// clients (weir check) from PEM files, and keeps the server's certificate
// fresh while the process runs.
//
// A [Reloader] owns a certificate, its private key and, for mutual TLS,
// the pool of certificate authorities that sign client certificates. Its
// [Reloader.ServerConfig] is what a listener uses: every new connection
// asks for the current configuration, which first stats the files and
// reloads them when one has changed (another inode, size or modification
// time). Replacing the files is therefore enough to rotate a certificate;
// existing connections keep the certificate they were opened with. A file
// modified within the last two seconds is also compared by content on each
// handshake until it settles, so an in-place rewrite that keeps the size
// and falls in the same timestamp tick is still seen. [Reloader.Reload]
// forces a reload (weir serve calls it on SIGHUP).
//
// A reload validates everything (the certificate parses, the key matches
// it, the CA file holds at least one certificate) before it swaps; on any
// error the previous certificate stays in use and the error is logged once
// per change of the files. The safest rotation writes new files next to
// the old ones and renames them into place, key first.
//
// Every configuration requires TLS 1.2 or later. With a client CA file the
// server requires and verifies a client certificate on every connection
// (tls.RequireAndVerifyClientCert); a session resumed after the CA file
// changed is verified again against the new pool by crypto/tls.
//
// Errors that concern one file are a [*FileError] naming which file
// (cert, key, client-ca, ca) so that a command line can name its flag.
package tlsconf
