package daemon

import (
	"fmt"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/sqlitestore"
)

func openSQLite(path string) (weir.Store, string, func() error, error) {
	s, err := sqlitestore.Open(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--store sqlite:%s: %w", path, err)
	}
	return s, "sqlite:" + path, s.Close, nil
}
