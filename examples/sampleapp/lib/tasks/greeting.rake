# The Heroku Scheduler example job: `rake output_greeting`.
desc "Print a greeting"
task output_greeting: :environment do
  puts "Hello World"
end
