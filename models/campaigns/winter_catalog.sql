{#-
    Winter catalogue to every active customer with a usable address, in every country, carrying the
    best offer the profile's loyalty tier is eligible for. Postal consent and the holdout are enforced
    (and counted) by the runner from direct_mail.yml's consent source.
-#}
with

profiles as (

    select * from {{ ref('int_profiles_qualified') }}

),

offers as (

    select * from {{ ref('int_profiles_offered') }}

),

audience as (

    select
        profiles.profile_id,
        profiles.first_name,
        profiles.last_name,
        profiles.address_line_1,
        profiles.address_line_2,
        profiles.postal_code,
        profiles.city,
        profiles.region,
        profiles.country_code,
        profiles.loyalty_tier,
        offers.offer_code,
        offers.offer_name,
        offers.offer_description

    from profiles
    left join offers
        on profiles.profile_id = offers.profile_id
    where
        profiles.is_active_customer
        and profiles.has_usable_address

)

select * from audience
