// Package config reads the weir server's configuration: a strict YAML file
// of named policies (each one or more weir limits, a key template and a
// shadow flag), server settings, and envoyproxy/ratelimit descriptor files
// read unchanged.
//
// Strict means every unknown key is an error naming the file, the line and
// the key, so a typo never silently drops a limit. [Load] and [Parse] return
// a fully validated [Config]; nothing is half-applied, which is what lets
// the server validate a new file completely before swapping it in.
package config
