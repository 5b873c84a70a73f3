// Package peers counts the weir serve instances that share one Redis
// store, so that each can take its share of a limit when Redis fails.
//
// Every instance beats into one sorted set (member: its random id; score:
// the Redis-clock instant its beat expires) every interval, and each beat
// drops the expired members and returns how many are left: the instances
// alive within the last TTL, itself included. The count is read in the
// same script as the beat, on Redis's clock, so instance clocks never
// matter. When Redis is unreachable the beats fail and the last count is
// kept: it is the number of instances that were sharing the limit when the
// outage began, the N each one divides its fallback limits by.
//
// What the count cannot know: an instance that starts during an outage has
// never counted its peers (it uses the configured floor), and an instance
// that started less than one interval before the outage may not have been
// counted by the others yet. The floor (server.fallback_instances) covers
// both when set to the deployment's usual size.
package peers
