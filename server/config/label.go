package config

import "github.com/weir-go/weir"

// LimitLabel is how the command line and the dashboard show a limit: its
// text form ("100/s burst=200"), after its name when it has one of its own
// ("daily: 10000/1d algo=fixed-window"). An unnamed limit is named by its
// text form, which is not repeated.
func LimitLabel(l weir.Limit) string {
	text := l.String()
	if l.Name == "" || l.Name == text {
		return text
	}
	return l.Name + ": " + text
}
