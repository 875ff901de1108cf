require "rails"
require "active_record/railtie"

module SampleApp
  class Application < Rails::Application
    config.load_defaults 6.1
    config.eager_load = false
    config.colorize_logging = false
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE", "sampleapp-not-a-secret")

    # Twelve-factor logging: to stdout, quiet unless asked (RAILS_LOG_LEVEL=debug shows SQL).
    config.logger = ActiveSupport::Logger.new($stdout)
    config.log_level = ENV.fetch("RAILS_LOG_LEVEL", "warn").to_sym
  end
end
