{#-
    Winter catalogue to every active customer, in every country, carrying the best offer the profile's
    loyalty tier is eligible for, addressed in the normalized form the mail house prints. The runner
    enforces (and counts) postal consent, suppression lists, invalid addresses, the frequency cap and the
    holdout, so the model does not filter on them. The country is the CRM's own code while an address
    is pending validation (a plain `dbt build` before `directmail addresses validate`; the runner
    excludes such a profile as invalid_address): the same code, upper-cased, that validation prints.
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
        profiles.normalized_address_line_1 as address_line_1,
        profiles.normalized_address_line_2 as address_line_2,
        profiles.normalized_postal_code as postal_code,
        profiles.normalized_city as city,
        profiles.normalized_region as region,
        coalesce(profiles.normalized_country_code, profiles.country_code) as country_code,
        profiles.loyalty_tier,
        offers.offer_code,
        offers.offer_name,
        offers.offer_description

    from profiles
    left join offers
        on profiles.profile_id = offers.profile_id
    where profiles.is_active_customer

)

select * from audience
