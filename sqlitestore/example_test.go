package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/sqlitestore"
)

// A daily quota that survives a restart: the second store, on the same
// file, still knows what the first one admitted.
func Example() {
	dir, err := os.MkdirTemp("", "weir")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "limits.db")
	ctx := context.Background()

	run := func() {
		store, err := sqlitestore.Open(path)
		if err != nil {
			log.Fatal(err)
		}
		defer store.Close()
		lim, err := weir.NewLimiter(store, weir.PerDay(3).WithName("daily"))
		if err != nil {
			log.Fatal(err)
		}
		for range 2 {
			d, err := lim.Allow(ctx, "user:42")
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(d.Allowed, d.Remaining)
		}
	}
	run() // first process
	run() // after a restart
	// Output:
	// true 2
	// true 1
	// true 0
	// false 0
}

// New puts the store's tables into a database the application already
// has open.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "weir")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlitestore.New(db)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	d, err := store.Take(context.Background(), &weir.Request{
		Checks: []weir.Check{{Key: "10.0.0.1", Limit: weir.PerSecond(5)}},
		Cost:   1,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allowed, d.Remaining)
	// Output: true 4
}
