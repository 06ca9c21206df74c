# sidekiq_driver.rb - the Sidekiq side of bench/compare (plan and job-log
# formats: see jobq_driver.c).
#   ruby sidekiq_driver.rb enqueue REDIS_URL QUEUE < plan  (QUEUE "p*": p<tenant>)
#   REDIS_URL=... sidekiq -r ./sidekiq_driver.rb -c N -q QUEUE...
# Jobs are pushed with Sidekiq::Client.push_bulk in chunks of 1000.
require 'sidekiq'

class BenchWork
  include Sidekiq::Worker
  sidekiq_options retry: false, backtrace: false

  LOG = ENV['COMPARE_JOB_LOG'] && File.open(ENV['COMPARE_JOB_LOG'], 'a')
  LOG&.sync = true

  def perform(tenant, enq_ns, ms)
    start = Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)
    sleep(ms / 1000.0) if ms > 0
    fin = Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)
    LOG&.write("#{tenant} #{enq_ns} #{start} #{fin}\n")
  end
end

if $PROGRAM_NAME == __FILE__
  abort 'usage: sidekiq_driver.rb enqueue REDIS_URL QUEUE < plan' unless ARGV.size == 3 && ARGV[0] == 'enqueue'
  Sidekiq.configure_client { |c| c.redis = { url: ARGV[1] } }
  queue = ARGV[2]
  mono = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
  t0 = mono.call
  first = nil
  total = 0
  send = lambda do |group|
    group.group_by { |t, _| queue.end_with?('*') ? queue.chomp('*') + t : queue }.each do |q, jobs|
      jobs.each_slice(1000) do |chunk|
        now = Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)
        Sidekiq::Client.push_bulk('class' => BenchWork, 'queue' => q,
                                  'args' => chunk.map { |t, ms| [t, now, ms] })
      end
    end
    total += group.size
  end
  cur = nil
  group = []
  flush = lambda do
    return if group.empty?
    delay = t0 + cur / 1000.0 - mono.call
    sleep(delay) if delay > 0
    first ||= mono.call
    send.call(group)
    group = []
  end
  $stdin.each_line.with_index(1) do |line, n|
    f = line.split
    abort "plan line #{n}: expected \"offset_ms tenant work_ms\"" unless f.size == 3
    off = f[0].to_i
    flush.call if off != cur
    cur = off
    group << [f[1], f[2].to_i]
  end
  flush.call
  puts "enqueued=#{total} wall_ns=#{first ? ((mono.call - first) * 1e9).to_i : 0}"
end
